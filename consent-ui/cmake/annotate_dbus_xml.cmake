# cmake -DIN=<xml> -DOUT=<xml> -P annotate_dbus_xml.cmake
#
# Copies a D-Bus introspection file, adding to every method argument of type
# a{sv} or aa{sv} the org.qtproject.QtDBus.QtTypeName.In<N>/Out<N> annotation
# that Qt 6.4's qdbusxml2cpp insists on for them (it does not map a{sv} to
# QVariantMap by itself). Nothing else changes: the contract in ipc/ stays
# the one source the glue is generated from.
cmake_minimum_required(VERSION 3.25)
if(NOT IN OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DIN=<xml> -DOUT=<xml> -P annotate_dbus_xml.cmake")
endif()
file(READ "${IN}" content)

set(result "")
while(TRUE)
  string(FIND "${content}" "<method " start)
  if(start EQUAL -1)
    string(APPEND result "${content}")
    break()
  endif()
  string(SUBSTRING "${content}" 0 ${start} head)
  string(APPEND result "${head}")
  string(SUBSTRING "${content}" ${start} -1 content)
  string(FIND "${content}" "</method>" stop)
  if(stop EQUAL -1)
    message(FATAL_ERROR "${IN}: <method> without </method>")
  endif()
  string(SUBSTRING "${content}" 0 ${stop} method)
  string(SUBSTRING "${content}" ${stop} -1 content)

  set(in_index 0)
  set(out_index 0)
  string(REGEX MATCHALL "<arg [^>]*/>" args "${method}")
  foreach(arg IN LISTS args)
    if(arg MATCHES "direction=\"out\"")
      set(dir Out)
      set(index ${out_index})
      math(EXPR out_index "${out_index} + 1")
    else()
      set(dir In)
      set(index ${in_index})
      math(EXPR in_index "${in_index} + 1")
    endif()
    set(qt_type "")
    if(arg MATCHES "type=\"a{sv}\"")
      set(qt_type "QVariantMap")
    elseif(arg MATCHES "type=\"aa{sv}\"")
      set(qt_type "QList&lt;QVariantMap&gt;")
    endif()
    if(qt_type)
      string(REPLACE "${arg}"
        "${arg}<annotation name=\"org.qtproject.QtDBus.QtTypeName.${dir}${index}\" value=\"${qt_type}\"/>"
        method "${method}")
    endif()
  endforeach()
  string(APPEND result "${method}")
endwhile()

file(WRITE "${OUT}.tmp" "${result}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
