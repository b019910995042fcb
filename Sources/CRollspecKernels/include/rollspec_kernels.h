// Hot loops of rollspec's kernels, in C so that they are optimised in every build and can
// pick AVX-512 / AVX2 / scalar code at run time. Only RollspecKernels imports this.
#ifndef ROLLSPEC_KERNELS_H
#define ROLLSPEC_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/// Placeholder so the target builds; replaced by the real kernels.
int rs_kernels_version(void);

#endif
