/*
 * replay_main.c: a main() for the libFuzzer harnesses so that `make check`
 * can run each one (built with the normal compiler, under ASan in `make
 * asan check`) over its seed corpus and every saved regression input,
 * without clang or fuzzing. Usage: harness FILE|DIR...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int
run_file(const char *path)
{
	unsigned char *buf;
	FILE *f = fopen(path, "rb");
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "cannot read %s\n", path);
		if (f)
			fclose(f);
		return -1;
	}
	if ((buf = malloc((size_t)n + 1)) == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	int i, ran = 0, bad = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);

	for (i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;
		char path[4096];

		if (stat(argv[i], &st) != 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			bad += run_file(argv[i]) != 0;
			ran++;
			continue;
		}
		if ((d = opendir(argv[i])) == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			bad += run_file(path) != 0;
			ran++;
		}
		closedir(d);
	}
	/* Also the empty input and a few fixed shapes. */
	LLVMFuzzerTestOneInput((const unsigned char *)"", 0);
	ran++;
	printf("%s: %d passed, %d failed\n", name, ran - bad, bad);
	return bad != 0;
}
