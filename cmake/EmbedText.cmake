# Turns a text file into a C++ source that returns it as a std::string_view (a raw string
# literal), so that the binary serves it without reading files at run time.
#   cmake -DINPUT=page.html -DOUTPUT=page.cpp -DNAMESPACE=a::b -DFUNCTION=page_html -P EmbedText.cmake
# The output is rewritten only when it changes.
file(READ "${INPUT}" content)
set(delimiter "llmgw_embed")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw string delimiter )${delimiter}\"")
endif()
set(source "// Generated from ${INPUT} by cmake/EmbedText.cmake: edit that file, not this one.\n")
string(APPEND source "#include <string_view>\n\nnamespace ${NAMESPACE} {\n\n")
string(APPEND source "std::string_view ${FUNCTION}() noexcept {\n")
string(APPEND source "  return R\"${delimiter}(${content})${delimiter}\";\n}\n\n}  // namespace ${NAMESPACE}\n")
file(WRITE "${OUTPUT}.tmp" "${source}")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
