# Finds civetweb's C library and header without Debian's CMake config, which
# fails unless the separate `civetweb` server package is installed.
# Defines Civetweb::civetweb.
find_path(CIVETWEB_INCLUDE_DIR civetweb.h)
find_library(CIVETWEB_LIBRARY NAMES civetweb)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Civetweb REQUIRED_VARS CIVETWEB_LIBRARY CIVETWEB_INCLUDE_DIR)
if(Civetweb_FOUND AND NOT TARGET Civetweb::civetweb)
  add_library(Civetweb::civetweb UNKNOWN IMPORTED)
  set_target_properties(Civetweb::civetweb PROPERTIES
    IMPORTED_LOCATION "${CIVETWEB_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CIVETWEB_INCLUDE_DIR}")
endif()
mark_as_advanced(CIVETWEB_INCLUDE_DIR CIVETWEB_LIBRARY)
