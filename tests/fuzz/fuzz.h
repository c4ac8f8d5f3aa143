/* The entry point every fuzz target defines: called by libFuzzer, or by replay_main.c. */
#ifndef CORVID_TESTS_FUZZ_H
#define CORVID_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
