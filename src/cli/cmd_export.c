/* ddpm export: options and the two file names -> ExportJob -> app_export (src/app/export.h). */
#include <stdio.h>
#include <string.h>

#include "app/export.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "core/common.h"

static const char *HEAD =
    "Usage: ddpm export [--dtype f16|bf16|f32] [--no-ema] IN OUT\n"
    "\n"
    "Writes inference-only weights for shipping: the model of IN (a weights file or a training\n"
    "state; its moving averages when it has them) with every BatchNorm folded into the\n"
    "convolution in front of it, stored in half precision (f16, the default, or bf16) or f32,\n"
    "and computed in float32 all the same. OUT holds everything sampling needs (model,\n"
    "schedule, data set): `ddpm sample`, `ddpm eval --ckpt` and `ddpm denoise` read it alone,\n"
    "and the f32 export samples exactly as IN. Training cannot resume from it.";

/* argv[2..] split into the options (with their values) and the other words. */
static int split_args(int argc, char **argv, Opt *opts, int no, char **opt_argv, int *n_opt,
                      const char **words, int *n_words) {
    *n_opt = *n_words = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            if (*n_words == 2)
                return err_set("unexpected argument '%s' (ddpm export takes IN and OUT)", a);
            words[(*n_words)++] = a;
            continue;
        }
        opt_argv[(*n_opt)++] = argv[i];
        /* a value given apart belongs to its option */
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(a + 2, "="), a + 2);
        const Opt *o = args_find(opts, no, name);
        if (o && o->type != OPT_FLAG && !strchr(a, '=') && i + 1 < argc)
            opt_argv[(*n_opt)++] = argv[++i];
    }
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *dtype_s = "f16";
    int no_ema = 0;
    Opt opts[] = {
        {"dtype", OPT_STR, &dtype_s, "stored precision: f16 (default), bf16 or f32", 0, -1, 0},
        {"no-ema", OPT_FLAG, &no_ema, "export the trained weights, not their moving averages", 0, -1, 0},
    };
    int no = (int)(sizeof opts / sizeof opts[0]);
    char **opt_argv = xcalloc((size_t)argc + 1, sizeof(char *));
    const char *words[2] = {NULL, NULL};
    int n_opt = 2, n_words = 0, r = -1;
    opt_argv[0] = argv[0];
    opt_argv[1] = argv[1];
    if (split_args(argc, argv, opts, no, opt_argv + 2, &n_opt, words, &n_words) == 0)
        r = args_parse(n_opt + 2, opt_argv, 2, opts, no, HEAD);
    xfree(opt_argv);
    if (r == 1) return 0;
    if (r != 0) return cli_fail("export", 2);
    ExportJob j = {.in = words[0], .out = words[1], .use_ema = !no_ema};
    if (app_export_dtype_parse(dtype_s, &j.dtype) != 0) return cli_fail("export", 2);
    if (n_words != 2) {
        fprintf(stderr, "ddpm export: needs the input and the output file: ddpm export [options] IN OUT (see --help)\n");
        return 2;
    }
    CliOutput co;
    const Progress out = cli_output(&co);
    if (app_export(&j, &out) != 0) return cli_fail("export", 1);
    return 0;
}
