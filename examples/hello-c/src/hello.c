/* The first example build: a C program compiled in kiln's sandbox. */
#include <stdio.h>

#ifndef GREETING
#define GREETING "hello"
#endif

int main(void) {
    printf("%s from a kiln build\n", GREETING);
    return 0;
}
