/* noentry.c -- a shared object that is not a Quern plugin (for tests). */
int not_a_job(void);

int not_a_job(void)
{
    return 42;
}
