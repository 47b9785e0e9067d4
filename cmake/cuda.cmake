# The CUDA backend (src/backend/cuda/*.cu), built whenever nvcc is found and
# REALM_CUDA_BACKEND is ON: sm_90 machine code plus compute_90 PTX for later
# GPUs. Otherwise cuda_absent.c stands in and "cuda" reports that it was not
# built. (Linking cudart + cuBLAS costs every process ~0.25 s at start-up, so
# the sanitized test build turns it off and compiles the backend separately.)
option(REALM_CUDA_BACKEND "Build the CUDA backend when nvcc is found" ON)
set(REALM_CUDA OFF)
if(REALM_CUDA_BACKEND)
  include(CheckLanguage)
  check_language(CUDA)
endif()
if(REALM_CUDA_BACKEND AND CMAKE_CUDA_COMPILER)
  # "90" = sm_90 machine code plus compute_90 PTX, i.e.
  # -gencode arch=compute_90,code=[sm_90,compute_90].
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  set(REALM_CUDA ON)
endif()

if(REALM_CUDA)
  file(GLOB REALM_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/backend/cuda/*.cu)
  target_sources(realm_core PRIVATE ${REALM_CUDA_SOURCES})
  set_source_files_properties(${REALM_CUDA_SOURCES} PROPERTIES LANGUAGE CUDA)
  set_target_properties(realm_core PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  target_compile_options(realm_core PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-std=c++17 -Xcompiler=-Wall>)
  target_link_libraries(realm_core PUBLIC CUDA::cudart CUDA::cublas)
  message(STATUS "realm: CUDA backend ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, sm_90 + compute_90 PTX)")
else()
  target_sources(realm_core PRIVATE ${CMAKE_SOURCE_DIR}/src/backend/cuda/cuda_absent.c)
  message(STATUS "realm: CUDA backend OFF (no nvcc)")
endif()

if(REALM_CUDA AND EXISTS ${CMAKE_SOURCE_DIR}/bench/cuda/bench_cuda.c)
  add_executable(realm_bench_cuda ${CMAKE_SOURCE_DIR}/bench/cuda/bench_cuda.c)
  target_link_libraries(realm_bench_cuda PRIVATE realm_core)
endif()
if(REALM_CUDA AND EXISTS ${CMAKE_SOURCE_DIR}/bench/cuda/boundary.cu)
  add_executable(realm_cuda_boundary ${CMAKE_SOURCE_DIR}/bench/cuda/boundary.cu)
  target_link_libraries(realm_cuda_boundary PRIVATE CUDA::cudart)
  set_target_properties(realm_cuda_boundary PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
endif()
