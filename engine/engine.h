/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine: wires the lcore runtime to the node's subsystems and runs it.
 *
 * The EAL main lcore is the control lcore; every other lcore is a worker.
 * Create, run and destroy are called on the main lcore, in that order.
 */
#ifndef PC_ENGINE_H
#define PC_ENGINE_H

#include "config.h"

struct pc_engine;

/*
 * Build the engine on an initialised EAL from an immutable config (which
 * must outlive the engine). Returns NULL and logs on failure.
 */
struct pc_engine *pc_engine_create(const struct pc_config *cfg);

/*
 * Launch the worker lcores and run the control loop on the calling (main)
 * lcore until a stop is requested, then wait for every worker to leave its
 * loop. Logs `ready` once every lcore is in its loop. Returns 0, or a
 * negative errno if the lcores could not be launched.
 */
int pc_engine_run(struct pc_engine *engine);

/*
 * Ask the engine to stop. Async-signal-safe: the signal handler calls it;
 * the control lcore notices within one pass.
 */
void pc_engine_request_stop(int signo);

/* Release everything, in the reverse order of creation. Accepts NULL. */
void pc_engine_destroy(struct pc_engine *engine);

#endif /* PC_ENGINE_H */
