# Checks that the protocol core stays pure (DESIGN.md section 1). Run with `cmake -P`:
#
#   -DCORE_DIR=<dir>          required: every *.h / *.cc / *.hpp / *.cpp under it is scanned
#   -DCORE_CMAKELISTS=<file>  optional: its target_link_libraries() lines may name only glog
#   -DLINKS_FILE=<file>       optional: "NAME=lib;lib" lines written by file(GENERATE) with the
#                             libraries ballot_paxos really links; only glog is allowed
#
# Fails (FATAL_ERROR, non-zero exit) listing every offender: file, and the include or call.
cmake_minimum_required(VERSION 3.20)

if(NOT DEFINED CORE_DIR OR NOT IS_DIRECTORY "${CORE_DIR}")
  message(FATAL_ERROR "CORE_DIR must name a directory (got '${CORE_DIR}')")
endif()

# Headers the core must never include. Each entry is a regex matched against the whole name
# between <> or "".
set(forbidden_includes
  # Runtime libraries that belong to net/ and store/.
  "^asio(\\.hpp|/.*)$" "^boost/.*$" "^capnp/.*$" "^kj/.*$" "^lmdb\\.h$" "^lmdb\\+\\+\\.h$"
  # Threads and synchronisation.
  "^thread$" "^mutex$" "^shared_mutex$" "^condition_variable$" "^future$" "^atomic$"
  "^stop_token$" "^semaphore$" "^latch$" "^barrier$" "^pthread\\.h$" "^threads\\.h$"
  "^stdatomic\\.h$"
  # Clocks and randomness (the core gets time from Tick() and randomness from Options::seed).
  "^chrono$" "^random$" "^ctime$" "^time\\.h$" "^sys/time\\.h$"
  # Files, streams and sockets.
  "^fstream$" "^iostream$" "^filesystem$" "^fcntl\\.h$" "^unistd\\.h$" "^sys/socket\\.h$"
  "^sys/un\\.h$" "^netinet/.*$" "^arpa/.*$" "^netdb\\.h$" "^poll\\.h$" "^sys/epoll\\.h$"
  "^sys/select\\.h$")

# Calls the core must never make (clock, global RNG, environment), matched after comments and
# string literals are removed. A member call (x.time(), p->clock()) is not flagged.
set(forbidden_call_regex
  "(^|[^A-Za-z0-9_.>])(rand|srand|random|rand_r|drand48|time|clock|clock_gettime|gettimeofday|getenv|random_device|system_clock|steady_clock|high_resolution_clock)[ \t]*[({:]")

set(offenders "")

file(GLOB_RECURSE sources LIST_DIRECTORIES false
  "${CORE_DIR}/*.h" "${CORE_DIR}/*.cc" "${CORE_DIR}/*.hpp" "${CORE_DIR}/*.cpp")
list(SORT sources)
if(sources STREQUAL "")
  message(FATAL_ERROR "no sources found under ${CORE_DIR}: refusing to pass an empty scan")
endif()

foreach(src IN LISTS sources)
  file(RELATIVE_PATH rel "${CORE_DIR}" "${src}")
  file(READ "${src}" content)
  # Work on the text with list separators neutralised, so lines stay intact.
  string(REPLACE ";" "," content "${content}")
  string(REPLACE "[" "(" content "${content}")
  string(REPLACE "]" ")" content "${content}")

  string(REGEX MATCHALL "(^|\n)[ \t]*#[ \t]*include[ \t]*[<\"][^>\"\n]*[>\"]" includes "${content}")
  foreach(inc IN LISTS includes)
    string(REGEX REPLACE "^\n?[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"\n]*)[>\"]$" "\\1" name "${inc}")
    foreach(pattern IN LISTS forbidden_includes)
      if(name MATCHES "${pattern}")
        list(APPEND offenders "${rel}: #include <${name}>")
        break()
      endif()
    endforeach()
  endforeach()

  # Strip comments, then string and character literals, then look for forbidden calls.
  string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" " " code "${content}")
  string(REGEX REPLACE "//[^\n]*" "" code "${code}")
  string(REGEX REPLACE "\"([^\"\\\\\n]|\\\\.)*\"" "\"\"" code "${code}")
  string(REGEX REPLACE "'([^'\\\\\n]|\\\\.)*'" "''" code "${code}")
  string(REGEX MATCHALL "${forbidden_call_regex}" calls "${code}")
  foreach(call IN LISTS calls)
    string(REGEX REPLACE "^[^A-Za-z_]" "" call "${call}")
    string(STRIP "${call}" call)
    list(APPEND offenders "${rel}: uses ${call}")
  endforeach()
endforeach()

# The build boundary: ballot_paxos links glog and nothing else.
set(allowed_links "glog::glog" "glog")
if(DEFINED CORE_CMAKELISTS AND NOT CORE_CMAKELISTS STREQUAL "")
  file(READ "${CORE_CMAKELISTS}" cm)
  string(REGEX REPLACE "#[^\n]*" "" cm "${cm}")
  string(REGEX MATCHALL "target_link_libraries[ \t\n]*\\([^)]*\\)" tll "${cm}")
  foreach(call IN LISTS tll)
    string(REGEX REPLACE "^target_link_libraries[ \t\n]*\\(([^)]*)\\)$" "\\1" args "${call}")
    string(REGEX REPLACE "[ \t\n]+" ";" args "${args}")
    list(REMOVE_ITEM args "" "PUBLIC" "PRIVATE" "INTERFACE")
    list(POP_FRONT args target)
    foreach(lib IN LISTS args)
      if(NOT lib IN_LIST allowed_links)
        list(APPEND offenders "${CORE_CMAKELISTS}: ${target} links ${lib}")
      endif()
    endforeach()
  endforeach()
endif()

if(DEFINED LINKS_FILE AND NOT LINKS_FILE STREQUAL "")
  if(NOT EXISTS "${LINKS_FILE}")
    message(FATAL_ERROR "LINKS_FILE ${LINKS_FILE} does not exist (re-run cmake)")
  endif()
  file(READ "${LINKS_FILE}" links)
  # A line is "PROPERTY=lib;lib". Keep lines whole by turning the list separators into commas
  # (no library name has one), then split each line's value back into a list.
  string(REPLACE ";" "," links "${links}")
  string(REGEX MATCHALL "[A-Z_]+=[^\n]*" link_lines "${links}")
  foreach(line IN LISTS link_lines)
    string(REGEX REPLACE "^([A-Z_]+)=.*$" "\\1" prop "${line}")
    string(REGEX REPLACE "^[A-Z_]+=" "" libs "${line}")
    string(REPLACE "," ";" libs "${libs}")
    foreach(lib IN LISTS libs)
      if(NOT lib STREQUAL "" AND NOT lib IN_LIST allowed_links)
        list(APPEND offenders "ballot_paxos ${prop}: ${lib}")
      endif()
    endforeach()
  endforeach()
endif()

if(offenders)
  list(LENGTH offenders n)
  string(REPLACE ";" "\n  " listing "${offenders}")
  message(FATAL_ERROR "the protocol core is not pure (${n} offenders):\n  ${listing}")
endif()
list(LENGTH sources n_sources)
message(STATUS "core purity: ${n_sources} files clean; ballot_paxos links only glog")
