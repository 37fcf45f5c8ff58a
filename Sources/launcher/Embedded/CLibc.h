// The C library for the launcher built as Embedded Swift (scripts/build-static), which has no
// Glibc module: the headers it uses, and errno, which is a macro C code reads through a function.
#ifndef CAIRN_CLIBC_H
#define CAIRN_CLIBC_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static inline int cairn_errno(void) { return errno; }
// open(2) is variadic, which Swift does not call.
static inline int cairn_open(const char *path, int flags) { return open(path, flags); }
#endif
