/* The subcommands; each returns the process exit status (0 ok, 1 error already printed,
 * 2 usage error). */
#ifndef DDPM_CLI_H
#define DDPM_CLI_H

int cmd_train(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_denoise(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_reproduce(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
