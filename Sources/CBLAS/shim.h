#include <cblas.h>
// OpenBLAS extensions: the number of threads its own pool uses for level-3 calls, and which
// kernel set ("core") it runs.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
char *openblas_get_config(void);
