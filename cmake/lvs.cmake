# Helpers shared by every folder's CMakeLists.txt.

# lvs_add_subdirectory_if_present(dir): folders that later work fills in.
function(lvs_add_subdirectory_if_present dir)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
    add_subdirectory(${dir})
  endif()
endfunction()

# lvs_torch_target(target): compile and link a target against LibTorch.
function(lvs_torch_target target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  target_compile_options(${target} PRIVATE ${TORCH_CXX_FLAGS})
  if(LVS_WITH_CUDA)
    target_compile_definitions(${target} PUBLIC LVS_WITH_CUDA=1)
  endif()
endfunction()

# lvs_gtest(name SOURCES ... LIBS ... [LABELS ...]): one gtest executable, registered with ctest.
function(lvs_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    LVS_GOLDEN_DIR="${PROJECT_SOURCE_DIR}/tests/golden"
    LVS_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    LVS_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
