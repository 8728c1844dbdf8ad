<?php

declare(strict_types=1);

function render_page(string $title, string $body): void
{
    $safe = htmlspecialchars($title, ENT_QUOTES, 'UTF-8');
    echo "<!doctype html><html><head><title>{$safe}</title></head><body>{$body}</body></html>";
}
