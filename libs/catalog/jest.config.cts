module.exports = {
  displayName: 'catalog',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/catalog',
};
