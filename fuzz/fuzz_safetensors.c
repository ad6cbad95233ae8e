/* libFuzzer harness for the safetensors reader (src/io/safetensors.c) and what ddpm does with
 * a file it accepted: the digest check, every tensor's bytes through the typed reader (and
 * the float ones, F32, F16 and BF16, widened by the float reader), and the configuration JSON
 * in the metadata. An accepted file's tensors must tile its data section exactly; everything
 * else must be a clean error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "model/checkpoint.h"
#include "train/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    StFile f;
    if (safetensors_parse(data, size, "fuzz", &f) != 0) return 0;
    if (f.data_start > f.size) abort();
    const size_t data_size = f.size - f.data_start;
    size_t total = 0;
    for (int i = 0; i < f.n; i++) {
        const StEntry *e = &f.entries[i];
        if (e->offset > data_size || e->bytes > data_size - e->offset) abort();
        total += e->bytes;
        void *buf = malloc(e->bytes ? e->bytes : 1);
        if (safetensors_read(&f, e->name, e->dtype, buf, e->ndim, e->shape) != 0) abort();
        if (e->bytes && memcmp(buf, safetensors_data(&f, e), e->bytes) != 0) abort();
        free(buf);
        if (e->dtype == ST_F32 || e->dtype == ST_F16 || e->dtype == ST_BF16) {
            /* floats of every width widen through the one reader */
            float *fl = malloc((e->bytes / safetensors_dtype_size(e->dtype) + 1) * sizeof(float));
            if (safetensors_read_f32(&f, e->name, fl, e->ndim, e->shape) != 0) abort();
            free(fl);
        }
        if (safetensors_find(&f, e->name) != e) abort(); /* names are unique */
    }
    if (total != data_size) abort();
    checkpoint_verify(&f, 0);
    const char *cfg = safetensors_meta(&f, "ddpm.config");
    if (cfg) {
        TrainConfig c;
        char dir[256];
        train_config_from_json(cfg, "fuzz", &c, dir, sizeof dir);
    }
    safetensors_close(&f);
    return 0;
}
