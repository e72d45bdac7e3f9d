/* A stand-in for libtasker_worker with the right symbols and a chosen ABI version, for the adapters'
 * version check. Built by scripts/ts-test: -DABI=<packed version> for a mismatch, -DNO_ABI for a library
 * that predates tasker_worker_abi_version. Nothing here is ever called except the version function. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
char *bootstrap_worker(const char *c) { (void)c; return NULL; }
char *get_worker_status(void) { return NULL; }
char *stop_worker(void) { return NULL; }
char *transition_to_graceful_shutdown(void) { return NULL; }
bool is_worker_running(void) { return false; }
char *get_ffi_dispatch_metrics(void) { return NULL; }
void check_starvation_warnings(void) {}
void cleanup_timeouts(void) {}
void free_rust_string(char *p) { (void)p; }
char *poll_step_events(void) { return NULL; }
int32_t complete_step_event(const char *a, const char *b) { (void)a; (void)b; return 0; }
uint8_t *map_ring_region(size_t *len) { if (len) *len = 0; return NULL; }
int32_t release_ring_region(const uint8_t *b) { (void)b; return 0; }
#ifndef NO_ABI
uint32_t tasker_worker_abi_version(void) { return ABI; }
#endif
