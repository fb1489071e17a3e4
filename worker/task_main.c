/*
 * task_main.c -- quern-task, the runner for one task attempt. The worker
 * starts it with a control socketpair on fd 3; it is not meant to be run by
 * hand.
 */
#include "taskrun.h"

#include <fcntl.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1 || fcntl(3, F_GETFD) < 0 || fcntl(4, F_GETFD) < 0) {
        fprintf(stderr, "quern-task: runs one task attempt for quern-worker, "
                        "which starts it with a control channel on fd 3 "
                        "and its spec on fd 4\n");
        return 2;
    }
    return qn_taskrun_main(3, 4);
}
