# Run at every build (cli/CMakeLists.txt, target gedge_commit): writes gedge_commit.hpp with
# `git describe --always --dirty` of the source tree now, not at configure time. The file is
# rewritten only when the text changes, so an unchanged tree recompiles nothing.
# In: SRC (source tree), OUT (header path), GIT (git executable or empty).
set(commit "unknown")
if(GIT AND EXISTS "${SRC}/.git")
  execute_process(COMMAND "${GIT}" describe --always --dirty --abbrev=12
                  WORKING_DIRECTORY "${SRC}" OUTPUT_VARIABLE out RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(rc EQUAL 0 AND out)
    set(commit "${out}")
  endif()
endif()
set(text "#pragma once\n#define GEDGE_COMMIT \"${commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
