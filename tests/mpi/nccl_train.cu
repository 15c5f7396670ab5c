// mpi_train.cpp on the CUDA backend with nccl_communicator (tests/mpi/run_nccl.sh, label cuda).
#define SELMASK_TEST_NCCL 1
#include "mpi_train.cpp"
