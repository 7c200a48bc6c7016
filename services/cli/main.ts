console.log('dips: not built yet');
