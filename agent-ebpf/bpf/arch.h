/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What differs by architecture, picked by clang's -D__TARGET_ARCH_<arch> (build.rs
 * sets it from Cargo's target): the syscall numbers the programs decode, how the
 * raw sys_enter hook reads a syscall's arguments from struct pt_regs, the 32-bit
 * (compat) syscall check, and the kernel types whose shape differs. Each header
 * under arch/ defines the same names:
 *
 *   struct thread_info                 task_struct's first member
 *   NR_<SYSCALL>                       numbers; a syscall the architecture lacks
 *                                      (arm64 has no open, link, symlink) is left
 *                                      undefined and its uses are #ifdef'd
 *   SYSCALL_ARG(regs, n)               argument n (0..5) of the syscall entering
 *   ARCH_IN_COMPAT_SYSCALL(regs)       non-zero for a 32-bit syscall, whose numbers
 *                                      mean other calls
 *
 * The syscall number itself is the tracepoint's id argument on every architecture.
 * Any other architecture is an error: a sensor reading the wrong registers would
 * report wrong events, not fail.
 */
#ifndef IMPRINT_ARCH_H
#define IMPRINT_ARCH_H

#if defined(__TARGET_ARCH_x86)
#include "arch/x86_64.h"
#elif defined(__TARGET_ARCH_arm64)
#include "arch/arm64.h"
#else
#error "imprint's sensor supports x86_64 (-D__TARGET_ARCH_x86) and arm64 (-D__TARGET_ARCH_arm64) only: other architectures number syscalls and lay out pt_regs differently"
#endif

#endif
