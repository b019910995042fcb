#include "rollspec_kernels.h"
int rs_kernels_version(void) { return 1; }
