// separator_assembly_test.cpp's cases on a GPU (runtime_gpu_tests).
#define STEMKIT_ASSEMBLY_ON_GPU 1
#include "tests/runtime/separator_assembly_test.cpp"
