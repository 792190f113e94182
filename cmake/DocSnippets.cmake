# gumbel_add_doc_snippets(<markdown file>...)
#
# Every ```cpp block of the given Markdown files becomes a program that is compiled against
# gumbel and run as a test, so the examples in the docs always build and work. A block is a
# whole program (it has its own main). Every ```python block runs after the page's C++ programs
# (it may read what they wrote) with /usr/bin/python3; the test is skipped where that Python has
# no numpy or torch.

# Writes the ```<language> blocks of a Markdown file to <prefix>1<suffix>, <prefix>2<suffix>,
# ...; sets <count> to their number.
function(gumbel_doc_blocks doc language prefix suffix count)
  file(READ ${doc} text)
  set(open_fence "```${language}\n")
  string(LENGTH "${open_fence}" open_length)
  set(index 0)
  while(TRUE)
    string(FIND "${text}" "${open_fence}" start)
    if(start EQUAL -1)
      break()
    endif()
    math(EXPR start "${start} + ${open_length}")
    string(SUBSTRING "${text}" ${start} -1 text)
    string(FIND "${text}" "\n```" stop)
    if(stop EQUAL -1)
      message(FATAL_ERROR "${doc}: a ```${language} block is not closed")
    endif()
    string(SUBSTRING "${text}" 0 ${stop} code)
    string(SUBSTRING "${text}" ${stop} -1 text)
    math(EXPR index "${index} + 1")
    file(GENERATE OUTPUT ${prefix}${index}${suffix} CONTENT "${code}\n")
  endwhile()
  set(${count} ${index} PARENT_SCOPE)
endfunction()

function(gumbel_add_doc_snippets)
  foreach(doc IN LISTS ARGN)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${doc})
    get_filename_component(stem ${doc} NAME_WE)
    string(TOLOWER ${stem} stem)
    set(dir ${CMAKE_CURRENT_BINARY_DIR}/snippets)
    gumbel_doc_blocks(${doc} cpp ${dir}/doc_${stem}_ .cpp programs)
    foreach(index RANGE 1 ${programs})
      if(programs EQUAL 0)
        break()
      endif()
      set(name doc_${stem}_${index})
      add_executable(${name} ${dir}/${name}.cpp)
      target_link_libraries(${name} PRIVATE gumbel::gumbel gumbel_dev_flags)
      add_test(NAME docs.${stem}.${index} COMMAND ${name})
      set_tests_properties(docs.${stem}.${index} PROPERTIES FIXTURES_SETUP doc_${stem})
    endforeach()
    gumbel_doc_blocks(${doc} python ${dir}/doc_${stem}_py .py scripts)
    foreach(index RANGE 1 ${scripts})
      if(scripts EQUAL 0)
        break()
      endif()
      add_test(NAME docs.${stem}.py${index}
               COMMAND sh -c "/usr/bin/python3 -c 'import numpy, torch' 2>/dev/null || exit 77; \
exec /usr/bin/python3 \"$0\"" ${dir}/doc_${stem}_py${index}.py)
      set_tests_properties(docs.${stem}.py${index} PROPERTIES SKIP_RETURN_CODE 77
                           FIXTURES_REQUIRED doc_${stem})
    endforeach()
  endforeach()
endfunction()
