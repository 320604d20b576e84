# ballotctl's cluster commands (tools/ctl/cluster_commands.h). Include from tools/CMakeLists.txt
# and link ballotctl with ballot_ctl. Paths are relative to this file so that it can be included
# from anywhere (tests/client includes it when tools/ has not).
add_library(ballot_ctl ${CMAKE_CURRENT_LIST_DIR}/cluster_commands.cc
            ${CMAKE_CURRENT_LIST_DIR}/member_commands.cc
            ${CMAKE_CURRENT_LIST_DIR}/lock_run.cc
            ${CMAKE_CURRENT_LIST_DIR}/lock_watch.cc)
target_link_libraries(ballot_ctl PUBLIC ballot_client)
