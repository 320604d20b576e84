# ballot-fenced-kv: the sample fenced resource server and its one-shot client (fenced_kv.cc).
# ballot_flags is defined later in tools/CMakeLists.txt; CMake resolves target names at
# generate time, so the order does not matter.
find_package(Boost 1.74 REQUIRED)  # Asio, header-only
add_executable(ballot-fenced-kv fenced_kv.cc)
target_link_libraries(ballot-fenced-kv PRIVATE ballot_fence ballot_flags Boost::headers
                      Threads::Threads glog::glog)
