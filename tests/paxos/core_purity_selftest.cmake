# Proves that check_core_purity.cmake can fail: it must reject planted offenders (and name them)
# and accept a clean tree. Run with `cmake -DSCANNER=<check_core_purity.cmake> -DWORK_DIR=<dir> -P`.
cmake_minimum_required(VERSION 3.20)

if(NOT DEFINED SCANNER OR NOT DEFINED WORK_DIR)
  message(FATAL_ERROR "SCANNER and WORK_DIR are required")
endif()

set(failures "")

# run_scanner(<name> <expect_fail> <expected substrings...>)
#   Runs the scanner on ${WORK_DIR}/<name> (and <name>.links / <name>.cmake when they exist).
function(run_scanner name expect_fail)
  set(args -DCORE_DIR=${WORK_DIR}/${name})
  if(EXISTS ${WORK_DIR}/${name}.links)
    list(APPEND args -DLINKS_FILE=${WORK_DIR}/${name}.links)
  endif()
  if(EXISTS ${WORK_DIR}/${name}.cmake)
    list(APPEND args -DCORE_CMAKELISTS=${WORK_DIR}/${name}.cmake)
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} ${args} -P ${SCANNER}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(all "${out}${err}")
  if(expect_fail AND rc EQUAL 0)
    list(APPEND failures "${name}: scanner passed but must fail")
  elseif(NOT expect_fail AND NOT rc EQUAL 0)
    list(APPEND failures "${name}: scanner failed on a clean tree:\n${all}")
  endif()
  foreach(want IN LISTS ARGN)
    string(FIND "${all}" "${want}" at)
    if(at EQUAL -1)
      list(APPEND failures "${name}: output does not mention '${want}':\n${all}")
    endif()
  endforeach()
  set(failures "${failures}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})

# A clean core: includes that are allowed, and words that only look like calls in comments,
# strings and member calls.
file(WRITE ${WORK_DIR}/clean/ok.h
"#include <vector>\n#include <string>\n#include \"paxos/types.h\"\n#include <glog/logging.h>\n"
"// the same time (not a call), and // #include <thread> in a comment\n"
"/* block comment: rand() time(nullptr) */\n"
"inline const char* kWhy = \"never call time(nullptr) here\";\n"
"inline int F(const Clockish& c) { return c.time() + c.p->clock(); }\n")
file(WRITE ${WORK_DIR}/clean.links "LINK_LIBRARIES=glog::glog\nINTERFACE_LINK_LIBRARIES=glog::glog\n")
file(WRITE ${WORK_DIR}/clean.cmake
"add_library(ballot_paxos a.cc)\ntarget_link_libraries(ballot_paxos PUBLIC glog::glog)\n")
run_scanner(clean FALSE "files clean")

# The case the brief names: one file including <thread>.
file(WRITE ${WORK_DIR}/thread/ok.cc "#include <vector>\nint x = 0;\n")
file(WRITE ${WORK_DIR}/thread/bad.h "#pragma once\n#include <thread>\nvoid F();\n")
run_scanner(thread TRUE "bad.h: #include <thread>")

# Every kind of offender at once, each must be listed.
file(WRITE ${WORK_DIR}/many/net.cc
"#include <boost/asio.hpp>\n#include <capnp/message.h>\n#include <kj/async.h>\n"
"  #  include <sys/socket.h>\n")
file(WRITE ${WORK_DIR}/many/sub/store.cc "#include <lmdb.h>\n#include <fstream>\n#include <iostream>\n")
file(WRITE ${WORK_DIR}/many/time.cc
"#include <chrono>\n#include <random>\n#include <mutex>\n#include <atomic>\n#include <ctime>\n"
"#include <condition_variable>\n#include <future>\n"
"int a = rand();\nlong b = std::time(nullptr);\nconst char* c = getenv(\"X\");\n")
file(WRITE ${WORK_DIR}/many.links "LINK_LIBRARIES=glog::glog;lmdb\nINTERFACE_LINK_LIBRARIES=glog::glog;lmdb\n")
file(WRITE ${WORK_DIR}/many.cmake "target_link_libraries(ballot_paxos PUBLIC glog::glog Boost::asio)\n")
run_scanner(many TRUE
  "net.cc: #include <boost/asio.hpp>" "net.cc: #include <capnp/message.h>"
  "net.cc: #include <kj/async.h>" "net.cc: #include <sys/socket.h>"
  "sub/store.cc: #include <lmdb.h>" "sub/store.cc: #include <fstream>"
  "sub/store.cc: #include <iostream>" "time.cc: #include <chrono>" "time.cc: #include <random>"
  "time.cc: #include <mutex>" "time.cc: #include <atomic>" "time.cc: #include <ctime>"
  "time.cc: #include <condition_variable>" "time.cc: #include <future>"
  "time.cc: uses rand(" "time.cc: uses time(" "time.cc: uses getenv("
  "ballot_paxos LINK_LIBRARIES: lmdb" "ballot_paxos links Boost::asio")

# An empty directory must not pass vacuously.
file(MAKE_DIRECTORY ${WORK_DIR}/empty)
run_scanner(empty TRUE "no sources found")

if(failures)
  string(REPLACE ";" "\n" listing "${failures}")
  message(FATAL_ERROR "core purity scanner self-test failed:\n${listing}")
endif()
message(STATUS "core purity scanner self-test: all cases behave")
