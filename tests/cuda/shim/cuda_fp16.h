// Stand-in for cuda_fp16.h: see cuda_16bit.h.
#pragma once
#include "cuda_16bit.h"
