#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Bump allocator for short-lived parse trees: allocate many small objects,
 * free them all at once with arena_free().
 */

typedef struct block {
    struct block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
} block;

typedef struct {
    block *head;
    size_t block_size;
    size_t total;
} arena;

#define ARENA_DEFAULT_BLOCK (64 * 1024)

static size_t align_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

void arena_init(arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : ARENA_DEFAULT_BLOCK;
    a->total = 0;
}

static block *arena_grow(arena *a, size_t min_size)
{
    size_t size = a->block_size > min_size ? a->block_size : min_size;
    block *b = malloc(sizeof *b + size);
    if (b == NULL) {
        return NULL;
    }
    b->next = a->head;
    b->size = size;
    b->used = 0;
    a->head = b;
    a->total += size;
    return b;
}

void *arena_alloc(arena *a, size_t n)
{
    size_t need = align_up(n ? n : 1, alignof(max_align_t));
    block *b = a->head;

    if (b == NULL || b->size - b->used < need) {
        b = arena_grow(a, need);
        if (b == NULL) {
            return NULL;
        }
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

char *arena_strdup(arena *a, const char *s)
{
    size_t len = strlen(s) + 1;
    char *copy = arena_alloc(a, len);
    if (copy != NULL) {
        memcpy(copy, s, len);
    }
    return copy;
}

void arena_free(arena *a)
{
    block *b = a->head;
    while (b != NULL) {
        block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

#ifdef ARENA_TEST
int main(void)
{
    arena a;
    arena_init(&a, 128);
    for (int i = 0; i < 1000; i++) {
        int *x = arena_alloc(&a, sizeof *x);
        assert(x != NULL && ((uintptr_t)x % alignof(max_align_t)) == 0);
        *x = i;
    }
    assert(strcmp(arena_strdup(&a, "hello"), "hello") == 0);
    arena_free(&a);
    return 0;
}
#endif
