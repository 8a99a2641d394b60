# ctest -P script: the README's sequence from a clean build directory — scripts/demo (which
# builds the library, the command and the demo: no other example, no tests, no benchmarks), then `cmake --install`, then a
# separate project uses the installed tree twice: through find_package(shuttle) and through
# pkg-config (shuttle.pc).
foreach(var SOURCE_DIR SCRATCH_DIR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${SCRATCH_DIR})
set(prefix ${SCRATCH_DIR}/prefix)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

run("scripts/demo" ${CMAKE_COMMAND} -E env SHUTTLE_BUILD_DIR=${SCRATCH_DIR}/build
    ${SOURCE_DIR}/scripts/demo --items 2 --bulk 1000)
if(NOT out MATCHES "M items/s")
  message(FATAL_ERROR "the demo did not run:\n${out}")
endif()
run("cmake --install after the demo" ${CMAKE_COMMAND} --install ${SCRATCH_DIR}/build --prefix ${prefix})
file(GLOB_RECURSE pc_files ${prefix}/*/shuttle.pc)
file(GLOB_RECURSE config_files ${prefix}/*/shuttleConfig.cmake)
if(NOT pc_files OR NOT config_files OR NOT EXISTS ${prefix}/include/shuttle/version.hpp
   OR NOT EXISTS ${prefix}/bin/shuttle)
  message(FATAL_ERROR "install is missing shuttle.pc, shuttleConfig.cmake, version.hpp or bin/shuttle")
endif()

# 1. find_package(shuttle): pulls fmt (find_dependency) and links shuttle::shuttle.
run("configuring the consumer" ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer
    -B ${SCRATCH_DIR}/consumer -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run("building the consumer" ${CMAKE_COMMAND} --build ${SCRATCH_DIR}/consumer)
run("running the consumer" ${SCRATCH_DIR}/consumer/consumer)
message("${out}")
if(NOT out MATCHES "installed shuttle [0-9]+\\.[0-9]+\\.[0-9]+ works: 42")
  message(FATAL_ERROR "the find_package consumer did not run")
endif()

# 2. pkg-config: the same program compiled by hand with `pkg-config --cflags --libs shuttle`.
find_program(PKG_CONFIG pkg-config REQUIRED)
get_filename_component(pc_directory ${pc_files} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_directory})
run("pkg-config" ${PKG_CONFIG} --cflags --libs shuttle)
string(STRIP "${out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run("compiling with pkg-config's flags" ${CXX} -std=c++20 ${SOURCE_DIR}/tests/consumer/main.cpp
    -o ${SCRATCH_DIR}/pkg-config-consumer ${flags})
run("running the pkg-config consumer" ${SCRATCH_DIR}/pkg-config-consumer)
message("${out}")
if(NOT out MATCHES "installed shuttle [0-9]+\\.[0-9]+\\.[0-9]+ works: 42")
  message(FATAL_ERROR "the pkg-config consumer did not run")
endif()
