// Stand-in for cuda_bf16.h: see cuda_16bit.h.
#pragma once
#include "cuda_16bit.h"
