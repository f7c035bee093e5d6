/* A shared library that is not the civetweb compatibility library (it lacks
 * SSL_get_peer_certificate): emu_start must refuse it by name. */
int emu_test_not_compat(void);
int emu_test_not_compat(void)
{
    return 42;
}
