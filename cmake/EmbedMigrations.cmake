# trellis_embed_migrations(TARGET <target> DIR <dir> FUNCTION <ns::name>)
#
# Compiles the SQL migrations of DIR (files named NNNN_name.sql) into TARGET as
#   const std::vector<trellis::db::Migration>& <FUNCTION>();
# TARGET must link trellis_db. The SQL is embedded byte for byte, so the checksums recorded in
# schema_migrations do not depend on the machine that built the binary. Adding, removing or
# renaming a file re-runs CMake (CONFIGURE_DEPENDS); editing one regenerates the source.

set(_TRELLIS_EMBED_MIGRATIONS_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/embed_migrations.cmake"
    CACHE INTERNAL "Script that generates the C++ source of embedded migrations")

function(trellis_embed_migrations)
  cmake_parse_arguments(ARG "" "TARGET;DIR;FUNCTION" "" ${ARGN})
  if(NOT ARG_TARGET OR NOT ARG_DIR OR NOT ARG_FUNCTION)
    message(FATAL_ERROR "trellis_embed_migrations needs TARGET, DIR and FUNCTION")
  endif()
  if(NOT ARG_FUNCTION MATCHES "^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$")
    message(FATAL_ERROR "trellis_embed_migrations: FUNCTION '${ARG_FUNCTION}' is not a C++ name")
  endif()
  if(NOT IS_DIRECTORY "${ARG_DIR}")
    message(FATAL_ERROR "trellis_embed_migrations: ${ARG_DIR} is not a directory")
  endif()

  file(GLOB sql_files CONFIGURE_DEPENDS "${ARG_DIR}/*.sql")
  list(SORT sql_files)
  # Checked here too, so that a bad name fails at configure time, before any compilation.
  foreach(file IN LISTS sql_files)
    get_filename_component(file_name "${file}" NAME)
    if(NOT file_name MATCHES "^([0-9]+)_([A-Za-z0-9_]+)\\.sql$")
      message(FATAL_ERROR "migration ${file}: name must look like 0001_create_users.sql")
    endif()
    string(REGEX REPLACE "^0+" "" version "${CMAKE_MATCH_1}")
    if(version STREQUAL "")
      message(FATAL_ERROR "migration ${file}: versions start at 1")
    endif()
    if(DEFINED file_of_version_${version})
      message(FATAL_ERROR "migrations ${file_of_version_${version}} and ${file} have the same "
                          "version ${version}")
    endif()
    set(file_of_version_${version} "${file}")
  endforeach()

  set(output_dir "${CMAKE_CURRENT_BINARY_DIR}/embedded_migrations")
  set(output "${output_dir}/${ARG_TARGET}_migrations.cc")
  set(manifest "${output_dir}/${ARG_TARGET}_migrations.txt")
  # Rewritten only when the list of files changes: a change of the list (not only of a file's
  # contents) must regenerate the source, whichever generator is used.
  string(REPLACE ";" "\n" manifest_content "${ARG_FUNCTION};${sql_files}")
  set(previous_content "")
  if(EXISTS "${manifest}")
    file(READ "${manifest}" previous_content)
  endif()
  if(NOT previous_content STREQUAL "${manifest_content}\n")
    file(WRITE "${manifest}" "${manifest_content}\n")
  endif()

  add_custom_command(
    OUTPUT "${output}"
    COMMAND "${CMAKE_COMMAND}" "-DMANIFEST=${manifest}" "-DOUTPUT=${output}"
            -P "${_TRELLIS_EMBED_MIGRATIONS_SCRIPT}"
    DEPENDS ${sql_files} "${manifest}" "${_TRELLIS_EMBED_MIGRATIONS_SCRIPT}"
    COMMENT "Embedding SQL migrations of ${ARG_DIR} as ${ARG_FUNCTION}()"
    VERBATIM)
  target_sources(${ARG_TARGET} PRIVATE "${output}")
endfunction()
