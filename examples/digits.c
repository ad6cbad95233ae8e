/* digits: writes a number in digits drawn by a class model, as one PNG row.
 * Build against the installed library:  cc digits.c $(pkg-config --cflags --libs ddpm) -o digits
 * Run:  ./digits class.safetensors 2026 out.png */
#include <ddpm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4 || !argv[2][0]) {
        fprintf(stderr, "usage: %s CLASS_MODEL.safetensors DIGITS OUT.png\n", argv[0]);
        return 2;
    }
    ddpm_model *m;
    if (ddpm_open(argv[1], NULL, &m) != DDPM_OK) {
        fprintf(stderr, "digits: %s\n", ddpm_last_error());
        return 1;
    }
    ddpm_info info;
    ddpm_describe(m, &info);
    int n = (int)strlen(argv[2]), labels[n];
    for (int i = 0; i < n; i++)
        if ((labels[i] = ddpm_class_index(m, (char[2]){argv[2][i], 0})) < 0) {
            fprintf(stderr, "digits: the model has no class '%c'\n", argv[2][i]);
            ddpm_close(m);
            return 1;
        }
    float *img = malloc(sizeof(float) * n * info.channels * info.height * info.width);
    ddpm_sample_params p;
    ddpm_sample_params_init(&p);
    p.n = n, p.labels = labels, p.guidance = 2.0f, p.sampler = "dpmpp2m", p.steps = 20;
    int ok = img && ddpm_sample(m, &p, img) == DDPM_OK &&
             ddpm_write_png(argv[3], img, n, n, &info) == DDPM_OK;
    if (!ok) fprintf(stderr, "digits: %s\n", img ? ddpm_last_error() : "out of memory");
    free(img);
    ddpm_close(m);
    return ok ? 0 : 1;
}
