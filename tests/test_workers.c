/*
 * test_workers.c -- the master's registry of workers: handles that are
 * indexes, the newest entry for an id, and who is alive as the scheduler
 * says.
 */
#include "helpers.h"

#include "../master/workers.h"

static qn_sched *sched;
static qn_workers reg;

static void setup(void)
{
    qn_sched_config sc = {.dead_ms = 1000, .task_timeout_ms = 5000};
    sched = qn_sched_new(&sc);
    qn_workers_init(&reg, sched);
}

static void teardown(void)
{
    qn_workers_release(&reg);
    qn_sched_destroy(&sched);
    qn_test_leak_check();
}

TestSuite(workers, .init = setup, .fini = teardown);

static int s_join(const char *id, unsigned slots, int has_data, int64_t now)
{
    qn_mworker w = {.slots = slots, .has_data = has_data};
    snprintf(w.id, sizeof w.id, "%s", id);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:9%s", id);
    w.endpoint = ep;
    return qn_workers_join(&reg, now, &w);
}

Test(workers, a_worker_s_handle_is_its_index_and_its_endpoint_its_own)
{
    cr_assert_eq(s_join("1", 2, 1, 0), 0);
    cr_assert_eq(s_join("2", 3, 0, 0), 1);
    cr_assert_eq(reg.n, 2);
    cr_assert_str_eq(reg.v[1].endpoint, "tcp://127.0.0.1:92");
    cr_assert_eq(qn_workers_find(&reg, "2"), 1);
    cr_assert_eq(qn_workers_find(&reg, "3"), -1);
    cr_assert(qn_workers_alive(&reg, 0) && qn_workers_alive(&reg, 1));
    cr_assert(!qn_workers_alive(&reg, 2), "no such handle");
}

Test(workers, counts_the_live_their_slots_and_who_keeps_data)
{
    s_join("1", 2, 1, 0);
    s_join("2", 3, 0, 0);
    cr_assert_eq(qn_workers_live(&reg), 2);
    cr_assert_eq(qn_workers_takers(&reg), 1);
    unsigned alive, dead, slots, busy;
    qn_workers_counts(&reg, &alive, &dead, &slots, &busy);
    cr_assert(alive == 2 && dead == 0 && slots == 5 && busy == 0);
}

Test(workers, a_worker_given_up_for_dead_joins_again_as_a_new_entry)
{
    s_join("1", 1, 1, 0);
    s_join("2", 1, 1, 0);
    qn_sched_worker_seen(sched, 900, 1);
    qn_sched_tick(sched, 1500); /* "1" silent past dead_ms */
    cr_assert(!qn_workers_alive(&reg, 0));
    cr_assert_eq(qn_workers_alive_id(&reg, "1"), -1);
    cr_assert_eq(qn_workers_alive_id(&reg, "2"), 1);
    unsigned alive, dead, slots, busy;
    qn_workers_counts(&reg, &alive, &dead, &slots, &busy);
    cr_assert(alive == 1 && dead == 1 && slots == 1);
    cr_assert_eq(s_join("1", 4, 1, 1600), 2);
    cr_assert_eq(qn_workers_find(&reg, "1"), 2, "the newest entry");
    cr_assert_eq(qn_workers_alive_id(&reg, "1"), 2);
    cr_assert_eq(qn_workers_live(&reg), 2);
}
