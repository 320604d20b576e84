# Ballot as a package: `cmake --install build --prefix DIR` installs the libraries, the public
# headers and a CMake package (and ballot.pc), so that another project does
#   find_package(ballot CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE ballot::ballot)
# and `#include <ballot/ballot.h>`. Within a build tree (add_subdirectory, FetchContent) the same
# ballot::ballot target exists. Included from the top-level CMakeLists.txt after every library.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The libraries behind ballot::ballot, in link order (each needs only those after it), with the
# name each has in the package (ballot::server, ...).
set(BALLOT_PACKAGE_LIBRARIES
  ballot_runtime server
  ballot_driver driver
  ballot_metrics metrics
  ballot_client client
  ballot_net net
  ballot_store store
  ballot_statemachine statemachine
  ballot_paxos paxos
)
set(ballot_export_targets ballot)
set(ballot_pc_libs "")
while(BALLOT_PACKAGE_LIBRARIES)
  list(POP_FRONT BALLOT_PACKAGE_LIBRARIES target export_name)
  # Headers are included by their path from the repository root ("net/server/server.h"): the
  # source tree (and the build tree, for the generated net/ballot.capnp.h) when built here,
  # include/ballot/ when installed.
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/ballot>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  list(APPEND ballot_export_targets ${target})
  string(APPEND ballot_pc_libs " -l${target}")
endwhile()

# ballot::ballot: everything a replicated service needs (Server, Client, StateMachine, stores).
add_library(ballot INTERFACE)
add_library(ballot::ballot ALIAS ballot)
target_link_libraries(ballot INTERFACE ballot_runtime ballot_client ballot_statemachine
                      ballot_store)
# <ballot/ballot.h>: include/ in the source tree, include/ when installed.
target_include_directories(ballot INTERFACE
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

install(TARGETS ${ballot_export_targets} EXPORT ballotTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

# The public headers: <ballot/ballot.h> and exactly what it includes, under include/ballot/ by
# their repository paths. Nothing here may reach a test hook (PlantedBugs, TEST_*):
# tools/test.sh checks the installed tree.
set(BALLOT_PUBLIC_HEADERS
  net/client/client.h
  net/client/election.h
  net/cluster_config.h
  net/server/driver_tuning.h
  net/server/metrics_http.h
  net/server/metrics_registry.h
  net/server/server.h
  net/wire.h
  paxos/command_list.h
  paxos/configuration.h
  paxos/message.h
  paxos/status.h
  paxos/tuning.h
  paxos/types.h
  statemachine/session_table.h
  statemachine/snapshot_stream.h
  statemachine/state_machine.h
)
install(FILES ${PROJECT_SOURCE_DIR}/include/ballot/ballot.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ballot)
foreach(header ${BALLOT_PUBLIC_HEADERS})
  get_filename_component(dir ${header} DIRECTORY)
  install(FILES ${PROJECT_SOURCE_DIR}/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ballot/${dir})
endforeach()

set(ballot_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/ballot)
install(EXPORT ballotTargets NAMESPACE ballot:: DESTINATION ${ballot_cmake_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/ballotConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/ballotConfig.cmake
                              INSTALL_DESTINATION ${ballot_cmake_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ballotConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ballotConfig.cmake ${PROJECT_BINARY_DIR}/ballotConfigVersion.cmake
        DESTINATION ${ballot_cmake_dir})

# pkg-config: the same libraries, static, so their dependencies are listed in Requires.
# Relocatable: the prefix is found from where the file is (${pcfiledir}), so --prefix at install
# time works.
string(STRIP "${ballot_pc_libs}" BALLOT_PC_LIBS)
file(RELATIVE_PATH BALLOT_PC_PREFIX_FROM_PCFILEDIR /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" BALLOT_PC_PREFIX_FROM_PCFILEDIR "${BALLOT_PC_PREFIX_FROM_PCFILEDIR}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/ballot.pc.in ${PROJECT_BINARY_DIR}/ballot.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ballot.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
