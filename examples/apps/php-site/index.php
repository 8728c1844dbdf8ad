<?php

declare(strict_types=1);

require __DIR__ . '/includes/layout.php';

$title = 'Welcome';
render_page($title, '<p>A plain PHP site, no framework.</p>');
