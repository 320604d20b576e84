# The Ready driver: thread-, socket- and clock-free, so the simulator runs the same code as the
# server (it links no Asio and no Cap'n Proto).
add_library(ballot_driver driver.cc)
target_link_libraries(ballot_driver PUBLIC ballot_store ballot_statemachine)

# The server runtime: the driver over the transport, LMDB, an Applier and threads.
add_library(ballot_runtime node.cc join_gate.cc watch_hub.cc)
# ballot_client: a joining node learns the cluster id from its peers as a client would.
target_link_libraries(ballot_runtime PUBLIC ballot_net ballot_client ballot_driver ballot_store
                      ballot_statemachine)
