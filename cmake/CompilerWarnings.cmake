# Per-target warnings (never global flags): -Werror only when LLMGW_WERROR is on (the ci preset).
function(llmgw_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough)
  if(LLMGW_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
