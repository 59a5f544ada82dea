// Open MPI's C API (Debian libopenmpi-dev 4.1). Its handles are macros Swift cannot import
// (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_IN_PLACE is (void *)1): these functions return them.
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

static inline MPI_Comm tao_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype tao_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype tao_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op tao_mpi_sum(void) { return MPI_SUM; }
static inline void *tao_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Errhandler tao_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline MPI_Status *tao_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
