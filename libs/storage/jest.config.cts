module.exports = {
  displayName: 'storage',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/storage',
};
