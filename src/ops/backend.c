/* The registry of backends: which implementations of the operators exist, and which one a
 * context gets from a device name (ops_ctx_init). */
#include "ops/backend.h"

#include <stdio.h>
#include <string.h>

#include "core/common.h"

/* One line per backend, whose table src/backend/<name>/ defines as backend_<name>; the first
 * is the default. A build of a subset defines its own list (the web build: docs/WEB.md). */
#ifndef BACKEND_LIST
#define BACKEND_LIST(X) X(cpu) X(ref)
#endif

#define BACKEND_DECLARE(name) extern const Backend backend_##name;
BACKEND_LIST(BACKEND_DECLARE)
#define BACKEND_ENTRY(name) &backend_##name,
static const Backend *const registry[] = {BACKEND_LIST(BACKEND_ENTRY)};
#define REGISTRY_COUNT ((int)(sizeof registry / sizeof registry[0]))

int backend_count(void) { return REGISTRY_COUNT; }

const Backend *backend_at(int i) {
    DDPM_CHECK(i >= 0 && i < REGISTRY_COUNT);
    return registry[i];
}

const Backend *backend_default(void) { return registry[0]; }

const Backend *backend_find(const char *name) {
    char names[256] = "";
    size_t len = 0;
    for (int i = 0; i < REGISTRY_COUNT; i++) {
        if (name && strcmp(name, registry[i]->name) == 0) return registry[i];
        const char *joint = i == 0 ? "" : i == REGISTRY_COUNT - 1 ? " or " : ", ";
        int w = snprintf(names + len, sizeof names - len, "%s%s", joint, registry[i]->name);
        if (w > 0 && (size_t)w < sizeof names - len) len += (size_t)w;
    }
    err_set("unknown device '%s' (expected %s)", name ? name : "", names);
    return NULL;
}

int ops_ctx_init(OpsCtx *ctx, const char *device, int nthreads) {
    DDPM_CHECK(nthreads >= 1);
    const Backend *be = device ? backend_find(device) : backend_default();
    if (!be) return -1;
    *ctx = (OpsCtx){.nthreads = nthreads, .ws = NULL, .ws_floats = 0, .be = be};
    if (be->init) be->init();
    return 0;
}
