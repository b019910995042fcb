#include <cblas.h>
// OpenBLAS extension: the number of threads its own pool uses for level-3 calls.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
