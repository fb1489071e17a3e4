/*
 * taskspec.c -- see taskspec.h.
 */
#include "taskspec.h"

#include "layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The inputs, each a copy of the assignment's piece; a map reads a dataset
 * shard this worker holds (with the CRC the master knows) from its copy
 * here instead of streaming it from another worker. */
static void s_inputs(qn_taskspec *ts, const Quern__TaskSpec *assigned,
                     const qn_taskspec_local *local)
{
    size_t n = assigned->n_inputs;
    ts->pieces = qn_calloc(n + 1, sizeof *ts->pieces);
    ts->inputs = qn_calloc(n + 1, sizeof *ts->inputs);
    ts->paths = qn_calloc(n + 1, sizeof *ts->paths);
    for (size_t i = 0; i < n; i++) {
        Quern__InputPiece *pc = &ts->pieces[i];
        *pc = *assigned->inputs[i];
        ts->inputs[i] = pc;
        const qn_shard *sh =
            pc->dataset[0] && local->store &&
                    assigned->kind == QUERN__TASK_KIND__MAP
                ? qn_store_find(local->store, pc->dataset, pc->shard)
                : NULL;
        if (sh && sh->crc == pc->crc) {
            qn_store_path(local->store, pc->dataset, pc->shard, &ts->paths[i]);
            pc->path = ts->paths[i].data;
        }
    }
    ts->spec.inputs = ts->inputs;
}

/* Where the task's output goes, when this worker decides: a copy writes a
 * fresh file in the store's incoming folder (installed as the shard when
 * the copy succeeds); a reduce writing a dataset, the job's staging
 * folder in the store. */
static void s_output(qn_taskspec *ts, const Quern__TaskSpec *assigned,
                     const qn_taskspec_local *local)
{
    if (assigned->kind == QUERN__TASK_KIND__COPY && assigned->n_inputs == 1 &&
        local->store) {
        const Quern__InputPiece *pc = assigned->inputs[0];
        qn_store_temp_path(local->store, pc->dataset, &ts->output);
        ts->copy = 1;
        snprintf(ts->copy_shard.dataset, sizeof ts->copy_shard.dataset, "%s",
                 pc->dataset);
        ts->copy_shard.index = pc->shard;
        ts->copy_shard.size = pc->file_size;
        ts->copy_shard.crc = pc->crc;
        ts->spec.output_dir = ts->output.data;
    } else if (assigned->output_dataset[0] && local->store) {
        qn_buf_printf(&ts->output, "%s/.staging/%s", qn_store_dir(local->store),
                      assigned->job_id);
        ts->spec.output_dir = ts->output.data;
    }
}

int qn_taskspec_build(qn_taskspec *ts, const Quern__TaskSpec *assigned,
                      const qn_taskspec_local *local, const char **why)
{
    memset(ts, 0, sizeof *ts);
    ts->spec = *assigned;
    ts->spec.work_dir = (char *)local->work_dir;
    if (assigned->plugin_hash[0]) {
        qn_plugin_path(&ts->plugin, local->work_dir, assigned->plugin_hash);
        ts->spec.plugin = ts->plugin.data;
    }
    s_inputs(ts, assigned, local);
    s_output(ts, assigned, local);
    if (local->curve_secret)
        ts->spec.curve_secret = (char *)local->curve_secret;
    if (local->curve_master)
        ts->spec.curve_master = (char *)local->curve_master;
    if ((assigned->kind == QUERN__TASK_KIND__COPY ||
         (assigned->output_dataset[0] &&
          assigned->kind == QUERN__TASK_KIND__REDUCE)) &&
        !local->store) {
        *why = "this worker keeps no datasets (it has no --data-dir)";
        return -1;
    }
    return 0;
}

void qn_taskspec_release(qn_taskspec *ts)
{
    for (size_t i = 0; ts->paths && i < ts->spec.n_inputs; i++)
        qn_buf_release(&ts->paths[i]);
    free(ts->paths);
    free(ts->pieces);
    free(ts->inputs);
    qn_buf_release(&ts->plugin);
    qn_buf_release(&ts->output);
    memset(ts, 0, sizeof *ts);
}
