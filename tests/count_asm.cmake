# bq_count_asm(FILE PATTERN OUT): how many times PATTERN matches in the assembly file FILE (emitted by the
# build beside each kernel object); a missing file is an error. Shared by the check_*.cmake scripts.
function(bq_count_asm file pattern out)
  if(NOT EXISTS "${file}")
    message(FATAL_ERROR "${CMAKE_CURRENT_LIST_FILE}: ${file} does not exist")
  endif()
  file(READ "${file}" text)
  string(REGEX MATCHALL "${pattern}" hits "${text}")
  list(LENGTH hits count)
  set(${out} ${count} PARENT_SCOPE)
endfunction()
