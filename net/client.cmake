# The client library (net/client.h): included from net/CMakeLists.txt. Paths are relative to
# this file so that it can be included from anywhere.
add_library(ballot_client ${CMAKE_CURRENT_LIST_DIR}/client.cc ${CMAKE_CURRENT_LIST_DIR}/election.cc)
target_link_libraries(ballot_client PUBLIC ballot_net ballot_statemachine)
