package dev.skiff.sdk;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method of a function's class that runs once per container, before its first call and
 * before a memory snapshot is taken (like Modal's {@code @enter}): load a model, open a pool, warm
 * the JIT. It takes no arguments; an instance method needs a function on an instance ({@code
 * Class#method}). Several run in the order of their names. If one throws, the container fails to
 * start and calls see the error.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.METHOD)
public @interface Enter {}
