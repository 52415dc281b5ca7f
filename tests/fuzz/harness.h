/* What the libFuzzer targets of tests/fuzz share: how a target reports a broken contract, a file
 * in memory for parsers that take a path, and the main each target gets when it is built with
 * -DFUZZ_REPLAY_MAIN, which feeds it the files of its checked-in corpus so that `make check` runs
 * it on its seeds and on every input that once crashed it. Linked into both builds. */
#ifndef TRIBUTARY_TESTS_FUZZ_HARNESS_H
#define TRIBUTARY_TESTS_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Stops the program with a trap when cond is false: libFuzzer and the replay main both report it
 * as a crash, with the stack, and libFuzzer saves the input. For contracts a target checks on
 * top of what the sanitizers see (a refusal without a message, a decoded value out of range). */
#define HARNESS_ASSERT(cond)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* Replaces the contents of the process's one in-memory file (a memfd, made at the first call)
 * with data[0..size) and returns a path that opens it, "/proc/self/fd/N", valid until the next
 * call. Nothing is left on disk when the process ends. Aborts when the file cannot be made or
 * written: the harness cannot run without it. */
const char *harness_file(const void *data, size_t size);

/* A target's LLVMFuzzerTestOneInput. */
typedef int harness_target_fn(const uint8_t *data, size_t size);

/* Runs target on every regular file of the directories and files named in argv[1..argc), or,
 * with none, of FUZZ_CORPUS_ROOT/name (tests/fuzz/corpus/name in the source tree); files of a
 * directory go in name order, each from an exact-size heap copy so that the sanitizers see a
 * read past its end. A target traps on a broken contract, so a bad input ends the program; what
 * returns here is an input that could not be read. Prints "name: replayed N file(s) from ..."
 * and returns the exit status for main: 0, or 1 when a file or directory cannot be read or no
 * file was found (an empty or misplaced corpus would otherwise pass unnoticed). */
int harness_replay_main(int argc, char **argv, const char *name, harness_target_fn *target);

#endif
