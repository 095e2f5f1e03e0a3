# `cmake --install` the build tree into a temporary prefix, then configure, build and run an
# outside project (consumer/) against it with find_package(spikeflow). Run by ctest
# (tests/install/CMakeLists.txt) with -DBUILD_DIR, -DSOURCE_DIR, -DWORK_DIR, -DVERSION and
# optionally -DLAUNCHER (a compiler launcher such as ccache).
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# The public headers must not pull torch in.
file(GLOB_RECURSE headers ${prefix}/include/spikeflow/*.h)
list(LENGTH headers n_headers)
foreach(h ${headers})
  file(STRINGS ${h} torch_lines REGEX "#include <torch/")
  if(torch_lines)
    message(FATAL_ERROR "installed header includes torch: ${h}")
  endif()
endforeach()
if(NOT EXISTS ${prefix}/include/spikeflow/pipeline/live_pipeline.h)
  message(FATAL_ERROR "include/spikeflow/pipeline/live_pipeline.h not installed")
endif()

run("installed spikeflow --version" ${prefix}/bin/spikeflow --version)
if(NOT out MATCHES "spikeflow ${VERSION}")
  message(FATAL_ERROR "installed spikeflow --version printed '${out}', expected 'spikeflow ${VERSION}'")
endif()

set(args -S ${SOURCE_DIR}/tests/install/consumer -B ${WORK_DIR}/build -DCMAKE_BUILD_TYPE=Release
         -DCMAKE_PREFIX_PATH=${prefix})
if(LAUNCHER)
  list(APPEND args -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
run("configuring the outside project" ${CMAKE_COMMAND} ${args})
run("building the outside project" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("running the outside project" ${WORK_DIR}/build/consumer)
message(STATUS "${out}")
message(STATUS "installed ${n_headers} headers under ${prefix}")
