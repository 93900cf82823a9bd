# What `cmake --install` puts where, and the .deb that `cpack` makes of it
# (docs/install.md). Included last by the top-level CMakeLists.txt, when every
# program target exists.
#
#   bin/                                        patchmgr, separate, stemkit-weights
#   share/man/man1/<program>.1.gz               help2man's page from the program's --help
#   share/bash-completion/completions/<program> from `<program> --completions bash`
#   share/zsh/vendor-completions/_<program>     from `<program> --completions zsh`
#                                               (share/zsh/site-functions outside /usr)
#
# The man pages and completions are made at install time by running the
# programs just built: they come from the option tables themselves, so they
# cannot drift from them, and a plain build does no extra work.
include(GNUInstallDirs)

# `make install` and cpack would otherwise build every target first, the test
# suites included; they need only the three programs, built beforehand:
#   cmake --build build --target patchmgr separate stemkit-weights
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)

set(STEMKIT_PROGRAMS patchmgr)
foreach(program stemkit-weights separate)
  if(TARGET ${program})
    list(APPEND STEMKIT_PROGRAMS ${program})
  endif()
endforeach()

# RUNPATH: none for libraries in the system's directories (Debian's
# libtorch-dev, and everything else the .deb depends on); a libtorch elsewhere
# (a PyTorch wheel's) is found through the directory it was linked from.
set_target_properties(${STEMKIT_PROGRAMS} PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
install(TARGETS ${STEMKIT_PROGRAMS} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(STEMKIT_ZSH_COMPLETIONS_DIR "" CACHE STRING
    "Where zsh completions go, relative to the prefix (default: share/zsh/vendor-completions under /usr on Debian and Ubuntu, where their zsh looks; else share/zsh/site-functions)")
set(STEMKIT_DEBIAN_ZSH FALSE)
if(EXISTS /etc/debian_version)
  set(STEMKIT_DEBIAN_ZSH TRUE)
endif()
find_program(STEMKIT_HELP2MAN help2man)
find_program(STEMKIT_GZIP gzip)
if(NOT STEMKIT_HELP2MAN)
  message(STATUS "install: help2man not found; `cmake --install` leaves out the man pages (apt-get install help2man)")
endif()

set(STEMKIT_MAN_NAME_patchmgr "keep a series of patches on pinned upstream checkouts")
set(STEMKIT_MAN_NAME_separate "split songs into stems with HTDemucs, BS-RoFormer and Mel-Band RoFormer")
set(STEMKIT_MAN_NAME_stemkit-weights "show what a PyTorch or safetensors checkpoint holds")

set(generated ${CMAKE_BINARY_DIR}/install-generated)
foreach(program ${STEMKIT_PROGRAMS})
  # Run as a bare name on PATH, so that the pages show `separate`, not the build directory.
  set(run ${CMAKE_COMMAND} -E env "PATH=$<TARGET_FILE_DIR:${program}>:\$ENV{PATH}")
  install(CODE "
    file(MAKE_DIRECTORY \"${generated}\")
    foreach(shell bash zsh)
      execute_process(COMMAND ${run} ${program} --completions \${shell}
                      OUTPUT_FILE \"${generated}/${program}.\${shell}\" RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR \"${program} --completions \${shell} failed (\${rc})\")
      endif()
    endforeach()")
  install(FILES ${generated}/${program}.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
          RENAME ${program})
  # The zsh directory depends on the prefix the install runs with (cpack's
  # is /usr, under DESTDIR; a packager's may be a staging <dir>/usr).
  install(CODE "
    set(dir \"${STEMKIT_ZSH_COMPLETIONS_DIR}\")
    set(debian ${STEMKIT_DEBIAN_ZSH})
    if(NOT dir)
      if(debian AND CMAKE_INSTALL_PREFIX MATCHES \"/usr/?$\")
        set(dir share/zsh/vendor-completions)
      else()
        set(dir share/zsh/site-functions)
      endif()
    endif()
    file(INSTALL \"${generated}/${program}.zsh\" DESTINATION \"\${CMAKE_INSTALL_PREFIX}/\${dir}\" RENAME _${program})")
  if(STEMKIT_HELP2MAN)
    install(CODE "
      execute_process(COMMAND ${run} ${STEMKIT_HELP2MAN} --no-info --no-discard-stderr
                              --version-string=${PROJECT_VERSION} \"--name=${STEMKIT_MAN_NAME_${program}}\"
                              --output=${generated}/${program}.1 ${program}
                      RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR \"help2man ${program} failed (\${rc})\")
      endif()
      execute_process(COMMAND ${STEMKIT_GZIP} -9nf ${generated}/${program}.1 RESULT_VARIABLE rc)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR \"gzip ${program}.1 failed (\${rc})\")
      endif()")
    install(FILES ${generated}/${program}.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  endif()
endforeach()

# `cpack` in the build directory: build/stemkit_<version>_<arch>.deb. Its
# Depends are dpkg-shlibdeps' reading of the programs' libraries, so they are
# Debian's package names (libtorch1.13, libgit2-1.5, ...): build it against
# Debian's packages (scripts/install-deps.sh), not a PyTorch wheel.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME stemkit)
set(CPACK_PACKAGE_CONTACT "stemkit developers" CACHE STRING "The .deb's Maintainer field")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "music source separation in C++ (HTDemucs, BS/Mel-Band RoFormer) and patchmgr")
set(CPACK_PACKAGE_DESCRIPTION "separate splits songs into stems with HTDemucs, BS-RoFormer and Mel-Band RoFormer \
on libtorch, without Python. patchmgr keeps a series of patches on pinned upstream checkouts. stemkit-weights shows \
what a checkpoint holds.")
set(CPACK_DEBIAN_PACKAGE_SECTION sound)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Debian's libtorch calls the system BLAS; the reference BLAS made HTDemucs' transformer 14x slower (install-deps.sh).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libopenblas0-pthread")
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
