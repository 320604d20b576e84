# The resource side of fencing tokens (fence.h): FenceGuard and the LMDB-backed FenceStore.
# A library of its own so that resource servers and the simulator can link it without the rest
# of the store; it lives in store/ because only store/ links LMDB.
add_library(ballot_fence fence.cc)
target_link_libraries(ballot_fence PUBLIC ballot_paxos PRIVATE ballot_store PkgConfig::LMDB)
