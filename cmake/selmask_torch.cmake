# selmask::torch (optional): the libtorch model adapters and the ATen backend
# (include/selmask/libtorch/). Where libtorch comes from, in this order:
#  1. a libtorch CMake package: Debian's libtorch-dev, or a user's libtorch through Torch_DIR or
#     CMAKE_PREFIX_PATH (find_package(Torch));
#  2. the Python `torch` wheel of SELMASK_TORCH_PYTHON (default: python3 on the PATH), located
#     without importing torch (importlib.util.find_spec). The wheel's own CMake package needs a CUDA
#     toolkit even for CPU use, so selmask links the wheel's libtorch_cpu and libc10 directly
#     (enough for CPU tensors, the C++ frontend and TorchScript).
# SELMASK_TORCH: AUTO (use libtorch where found, else one status line), ON (fail without it), OFF.
set(SELMASK_TORCH AUTO CACHE STRING "Build selmask::torch (libtorch adapters, ATen backend): AUTO, ON or OFF")
set_property(CACHE SELMASK_TORCH PROPERTY STRINGS AUTO ON OFF)
set(SELMASK_TORCH_PYTHON "" CACHE FILEPATH "Python whose torch wheel selmask::torch may use (default: python3)")
set(SELMASK_HAS_TORCH OFF)
set(SELMASK_TORCH_FROM_PACKAGE OFF)

if(NOT SELMASK_TORCH STREQUAL "OFF" AND NOT SELMASK_SANITIZE)
  set(_selmask_torch_includes "")
  set(_selmask_torch_libraries "")
  set(_selmask_torch_origin "")
  # 1. a CMake package. Caffe2's config (which TorchConfig loads) appends its own directories to
  #    CMAKE_MODULE_PATH; keep ours as it was.
  if(NOT SELMASK_TORCH_PYTHON)
    set(_selmask_module_path "${CMAKE_MODULE_PATH}")
    find_package(Torch CONFIG QUIET)
    set(CMAKE_MODULE_PATH "${_selmask_module_path}")
    if(Torch_FOUND)
      set(_selmask_torch_includes ${TORCH_INCLUDE_DIRS})
      set(_selmask_torch_libraries ${TORCH_LIBRARIES})
      set(_selmask_torch_origin "libtorch ${Torch_VERSION}, ${Torch_DIR}")
      set(SELMASK_TORCH_FROM_PACKAGE ON)
    endif()
  endif()
  # 2. the Python wheel
  if(NOT _selmask_torch_origin)
    set(_selmask_python "${SELMASK_TORCH_PYTHON}")
    if(NOT _selmask_python)
      find_program(_selmask_python NAMES python3)
    endif()
    if(_selmask_python)
      execute_process(
        COMMAND "${_selmask_python}" -c
                "import importlib.util as u; s = u.find_spec('torch'); print(s.submodule_search_locations[0] if s else '')"
        OUTPUT_VARIABLE _selmask_wheel OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(_selmask_wheel AND EXISTS "${_selmask_wheel}/include/torch/script.h")
        find_library(_selmask_torch_cpu torch_cpu PATHS "${_selmask_wheel}/lib" NO_DEFAULT_PATH NO_CACHE)
        find_library(_selmask_c10 c10 PATHS "${_selmask_wheel}/lib" NO_DEFAULT_PATH NO_CACHE)
        if(_selmask_torch_cpu AND _selmask_c10)
          set(_selmask_torch_includes "${_selmask_wheel}/include" "${_selmask_wheel}/include/torch/csrc/api/include")
          # -rpath-link: libtorch_cpu's own dependencies (libgomp, ...) lie next to it
          set(_selmask_torch_libraries "${_selmask_torch_cpu}" "${_selmask_c10}" "-Wl,-rpath-link,${_selmask_wheel}/lib")
          set(_selmask_torch_origin "the torch wheel at ${_selmask_wheel}")
        endif()
      endif()
    endif()
  endif()

  if(_selmask_torch_origin)
    set(SELMASK_HAS_TORCH ON)
    add_library(selmask_torch INTERFACE)
    add_library(selmask::torch ALIAS selmask_torch)
    set_target_properties(selmask_torch PROPERTIES EXPORT_NAME torch)
    target_include_directories(selmask_torch SYSTEM INTERFACE ${_selmask_torch_includes})
    target_link_libraries(selmask_torch INTERFACE selmask ${_selmask_torch_libraries})
    # exported for consumers unless libtorch lies inside this source or build tree (a virtual
    # environment in the checkout, as scripts/test.sh --torch makes): such paths cannot be installed
    set(_selmask_torch_exportable ON)
    foreach(_d ${_selmask_torch_includes})
      string(FIND "${_d}/" "${PROJECT_SOURCE_DIR}/" _in_source)
      string(FIND "${_d}/" "${PROJECT_BINARY_DIR}/" _in_build)
      if(_in_source EQUAL 0 OR _in_build EQUAL 0)
        set(_selmask_torch_exportable OFF)
      endif()
    endforeach()
    if(_selmask_torch_exportable)
      install(TARGETS selmask_torch EXPORT selmaskTorchTargets)
      install(EXPORT selmaskTorchTargets NAMESPACE selmask:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/selmask)
    else()
      message(STATUS "selmask: libtorch lies inside the source or build tree: selmask::torch is not installed")
    endif()
    message(STATUS "selmask: libtorch adapters and ATen backend on (${_selmask_torch_origin})")
    # the Python that runs the examples' and tests' PyTorch scripts: the wheel's, else Debian's
    # (python3-torch), not whatever python3 comes first on the PATH
    if(SELMASK_TORCH_PYTHON)
      set(SELMASK_TORCH_SCRIPT_PYTHON "${SELMASK_TORCH_PYTHON}")
    else()
      set(SELMASK_TORCH_SCRIPT_PYTHON /usr/bin/python3)
    endif()
  elseif(SELMASK_TORCH STREQUAL "ON")
    message(FATAL_ERROR "selmask: SELMASK_TORCH=ON but no libtorch was found (install libtorch-dev, set Torch_DIR, or SELMASK_TORCH_PYTHON to a Python with the torch wheel)")
  else()
    message(STATUS "selmask: libtorch not found: no selmask::torch (install libtorch-dev, or set Torch_DIR or SELMASK_TORCH_PYTHON)")
  endif()
elseif(SELMASK_SANITIZE AND SELMASK_TORCH STREQUAL "AUTO")
  message(STATUS "selmask: selmask::torch is not built in sanitizer builds (libtorch is not built with ASan)")
endif()
