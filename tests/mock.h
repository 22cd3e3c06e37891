/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stubs with settable and queued return values, for testing code that calls
 * libraries we cannot exercise here (verbs without a NIC, failing syscalls).
 *
 *   DEFINE_STUB(ibv_destroy_qp, int, (struct ibv_qp *qp), 0)
 *       defines ibv_destroy_qp() returning 0, counting its calls;
 *   MOCK_SET(ibv_destroy_qp, EBUSY)      every later call returns EBUSY;
 *   MOCK_PUSH(ibv_destroy_qp, EIO)       the next call returns EIO, then the set value;
 *   MOCK_CALLS(ibv_destroy_qp)           how many calls so far;
 *   MOCK_CLEAR(ibv_destroy_qp)           back to the default, counters reset.
 */
#ifndef PC_MOCK_H
#define PC_MOCK_H

#define PC_MOCK_QUEUE_MAX 16

#define DEFINE_STUB(fn, ret_type, params, default_val)                                             \
	static ret_type ut_##fn##_default = (default_val);                                         \
	static ret_type ut_##fn##_ret = (default_val);                                             \
	static ret_type ut_##fn##_queue[PC_MOCK_QUEUE_MAX];                                        \
	static unsigned int ut_##fn##_queued, ut_##fn##_head;                                      \
	static unsigned int ut_##fn##_calls;                                                       \
	ret_type fn params                                                                         \
	{                                                                                          \
		ut_##fn##_calls++;                                                                 \
		if (ut_##fn##_head < ut_##fn##_queued) {                                           \
			return ut_##fn##_queue[ut_##fn##_head++];                                  \
		}                                                                                  \
		return ut_##fn##_ret;                                                              \
	}

/* A stub that returns nothing. */
#define DEFINE_STUB_V(fn, params)                                                                  \
	static unsigned int ut_##fn##_calls;                                                       \
	void fn params                                                                             \
	{                                                                                          \
		ut_##fn##_calls++;                                                                 \
	}

#define MOCK_SET(fn, val) (ut_##fn##_ret = (val))

#define MOCK_PUSH(fn, val)                                                                         \
	do {                                                                                       \
		if (ut_##fn##_queued < PC_MOCK_QUEUE_MAX) {                                        \
			ut_##fn##_queue[ut_##fn##_queued++] = (val);                               \
		}                                                                                  \
	} while (0)

#define MOCK_CALLS(fn) (ut_##fn##_calls)

#define MOCK_CLEAR(fn)                                                                             \
	do {                                                                                       \
		ut_##fn##_ret = ut_##fn##_default;                                                 \
		ut_##fn##_queued = 0;                                                              \
		ut_##fn##_head = 0;                                                                \
		ut_##fn##_calls = 0;                                                               \
	} while (0)

#endif /* PC_MOCK_H */
